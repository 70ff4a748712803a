app_name = "opendap"
urlpatterns: list = []

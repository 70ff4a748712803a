app_name = "edr"
urlpatterns: list = []

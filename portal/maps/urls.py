app_name = "maps"

urlpatterns: list = []

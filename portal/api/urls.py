from rest_framework.routers import DefaultRouter

from .views import DatasetViewSet

app_name = "api"
router = DefaultRouter()
router.register("datasets", DatasetViewSet, basename="dataset")
urlpatterns = router.urls

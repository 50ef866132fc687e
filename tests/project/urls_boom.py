"""The product's URLs plus one view that crashes, to see how a real 500 is logged."""

from django.urls import path

from linkpoint.urls import urlpatterns as product_urlpatterns


def boom(request):
    raise RuntimeError("the view crashed")


urlpatterns = [path("boom/", boom), *product_urlpatterns]

from django.urls import path

from . import views

app_name = "connections"
urlpatterns = [
    path("", views.my_connections, name="my-connections"),
    path("<str:provider>/connect/", views.connect, name="connect"),
    path("<str:provider>/disconnect/", views.disconnect, name="disconnect"),
]

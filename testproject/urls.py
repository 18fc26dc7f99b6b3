from django.urls import path

from testproject.demo import views

urlpatterns = [
    path("", views.hello),
    path("hello/", views.hello),
    path("echo/", views.echo),
    path("broadcast/<str:group>/", views.broadcast),
]

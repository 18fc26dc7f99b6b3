from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("hello/", views.hello),
    path("page/", views.page),
    path("echo/", views.echo),
    path("admin/", admin.site.urls),
    path("chat/", views.chat_index, name="chat-index"),
    path("chat/<str:room_name>/", views.chat_room, name="chat-room"),
    path("api/csrf/", views.csrf),
    path("api/whoami/", views.whoami),
    path("api/broadcast/<str:room_name>/", views.broadcast),
    path("api/tasks/", views.start_task),
    path("api/tasks/<int:pk>/", views.task),
    path("api/download/", views.download),
    path("api/upload/", views.upload),
]

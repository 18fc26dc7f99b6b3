from django.contrib import admin

from testproject.demo.models import Task

admin.site.register(Task)

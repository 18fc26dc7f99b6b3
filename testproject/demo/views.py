"""Plain Django views used by tests, benchmarks and the demo."""


from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"Hello, world", content_type="text/plain")


@csrf_exempt
def echo(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "method": request.method,
            "path": request.path,
            "query": request.META.get("QUERY_STRING", ""),
            "body_length": len(request.body),
        }
    )


@csrf_exempt
def broadcast(request: HttpRequest, group: str) -> JsonResponse:
    # A sync view calling group_send through async_to_sync, as Django projects do.
    layer = get_channel_layer()
    text = request.body.decode() or "hello"
    async_to_sync(layer.group_send)(group, {"type": "chat.message", "text": text})
    return JsonResponse({"sent": text, "group": group})

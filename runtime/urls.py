from django.urls import path

from runtime import views

app_name = "runtime"
urlpatterns = [
    path("", views.playground, name="playground"),
    path("chat/", views.chat_stream, name="chat"),
    path("cancel/<str:request_id>/", views.cancel, name="cancel"),
    path("conversations/<int:pk>/delete/", views.conversation_delete, name="conversation_delete"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/delete/", views.token_delete, name="token_delete"),
]

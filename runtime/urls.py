from django.urls import path

from runtime import views, views_blind

app_name = "runtime"
# The chat stream and cancel (JSON) are in runtime/playground_api.py, on the site's ninja API.
urlpatterns = [
    path("", views.playground, name="playground"),
    path("conversations/<int:pk>/delete/", views.conversation_delete, name="conversation_delete"),
    path("tokens/", views.tokens, name="tokens"),
    path("blind/", views_blind.blind_compare, name="blind"),
    path("leaderboard/<int:pk>/", views_blind.leaderboard, name="leaderboard"),
    path("tokens/<int:pk>/delete/", views.token_delete, name="token_delete"),
]

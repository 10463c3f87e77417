from conversations.views.scaffolding import urlpatterns as scaffolding_urlpatterns

app_name = "conversations"
urlpatterns = [*scaffolding_urlpatterns]

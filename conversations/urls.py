from conversations.views.generation import urlpatterns as generation_urlpatterns
from conversations.views.review import urlpatterns as review_urlpatterns
from conversations.views.scaffolding import urlpatterns as scaffolding_urlpatterns

app_name = "conversations"
urlpatterns = [*scaffolding_urlpatterns, *generation_urlpatterns, *review_urlpatterns]

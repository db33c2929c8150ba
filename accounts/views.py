from django.conf import settings
from django.contrib.auth import views as auth_views

from accounts.backends import client_address
from accounts.services import login_blocked


class LoginView(auth_views.LoginView):
    """Django's login page; a username locked by too many failed logins gets 429 and says so."""

    template_name = "accounts/login.html"

    def form_invalid(self, form):
        username = form.data.get("username", "")
        if username and login_blocked(username=username, address=client_address(self.request)):
            minutes = max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)
            form.errors.clear()
            form.add_error(None, f"Too many failed logins. Try again in {minutes} minutes.")
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 429
            response["Retry-After"] = str(settings.LOGIN_LOCKOUT_SECONDS)
            return response
        return super().form_invalid(form)

from __future__ import annotations

from django.urls import path

from . import views

app_name = "newsletter"

urlpatterns = [
    path("", views.SignupView.as_view(), name="signup"),
    path("check-your-email/", views.CheckEmailView.as_view(), name="check_email"),
    path("confirm/<str:token>/", views.ConfirmView.as_view(), name="confirm"),
    path("thanks/", views.ThanksView.as_view(), name="thanks"),
]

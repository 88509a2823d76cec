from __future__ import annotations

from django import forms


class SignupForm(forms.Form):
    email = forms.EmailField(
        label="Your email", widget=forms.EmailInput(attrs={"placeholder": "you@example.com"})
    )

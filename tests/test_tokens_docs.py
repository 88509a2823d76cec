"""Every Python example of docs/tokens.md runs, in order, as one script."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.db import connections
from django.test import RequestFactory

from keel.models import ActionToken
from tests.docs_examples import blocks, run_page

PAGE = "tokens.md"


def test_the_page_has_examples() -> None:
    assert len(blocks(PAGE, "python")) >= 8


# transaction=True: the async example runs the ORM on another thread, which must see the rows.
@pytest.mark.django_db(transaction=True)
def test_every_example_of_the_tokens_page_runs() -> None:
    namespace: dict[str, Any] = {"__name__": "docs_tokens"}
    try:
        run_page(PAGE, namespace)
    finally:
        # asyncio.run() sends the ORM to asgiref's worker thread: close its connection there,
        # or the test database cannot be dropped.
        asyncio.run(sync_to_async(connections.close_all)())
    # The view example is a working view, not only a class statement.
    view_class = namespace["ConfirmEmailChangeView"]
    token = namespace["email_change"].create_token({"user_id": 1, "new_email": "b@example.com"})
    request = RequestFactory().get(f"/email/confirm/{token}/")
    request.user = AnonymousUser()
    view = view_class.as_view(template_name="keel/tokens/confirm.html")
    response = view(request, token=token)
    assert response.status_code == 200
    assert response["Referrer-Policy"] == "same-origin"
    assert ActionToken.objects.filter(purpose="email:change").exists()

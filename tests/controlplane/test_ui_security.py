"""The web UI's guards, checked over plain HTTP against a real control plane: what needs a
sign-in, where it sends you back to, open redirects, the one-time link, cross-site posts and
the headers of every page. (tests/ui/ drives the same pages in a real browser.)"""

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.support import Tenant

PAGE = {"Accept": "text/html"}


@contextmanager
def signed_in(tenant: Tenant) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tenant.cp.url, headers=PAGE) as web:
        r = web.post("/sign-in", data={"token": tenant.user_token, "next": "/"})
        assert r.status_code == 303, r.text
        yield web


def test_pages_need_a_sign_in_and_come_back_to_the_page(tenant: Tenant) -> None:
    with httpx.Client(base_url=tenant.cp.url, headers=PAGE) as web:
        r = web.get("/d/prod/runs?status=FAILURE")
        assert r.status_code == 303
        assert r.headers["location"] == "/sign-in?next=/d/prod/runs%3Fstatus%3DFAILURE"
        # A live fragment whose session is gone: htmx is sent to sign in, coming back to
        # the page around the fragment, not to the fragment.
        r = web.get(
            "/d/prod/overview/live",
            headers={"HX-Request": "true", "HX-Current-URL": f"{tenant.cp.url}/d/prod"},
        )
        assert r.status_code == 200 and r.headers["hx-redirect"] == "/sign-in?next=/d/prod"


def test_sign_in_never_redirects_to_another_site(tenant: Tenant) -> None:
    for target in ("//evil.example", "/\\evil.example", "https://evil.example/", "evil"):
        with httpx.Client(base_url=tenant.cp.url, headers=PAGE) as web:
            r = web.post("/sign-in", data={"token": tenant.user_token, "next": target})
            assert r.status_code == 303 and r.headers["location"] == "/", target


def test_opening_a_sign_in_link_uses_nothing_up(tenant: Tenant) -> None:
    with tenant.user() as c:
        path = c.post("/api/v1/sign-in-links", json={}).json()["path"]
    code = path.split("code=", 1)[1]
    with httpx.Client(base_url=tenant.cp.url, headers=PAGE) as web:
        assert web.get(path).status_code == 200
        assert web.get(path).status_code == 200  # a link scanner, a chat preview
        refused = web.post(
            "/sign-in/link", data={"code": code}, headers={"Origin": "http://evil.example"}
        )
        assert refused.status_code == 403
        r = web.post("/sign-in/link", data={"code": code}, headers={"Origin": tenant.cp.url})
        assert r.status_code == 303 and "tether_session" in r.cookies
        again = web.post("/sign-in/link", data={"code": code}, headers={"Origin": tenant.cp.url})
        assert again.status_code == 401


def test_posts_need_our_origin_and_the_csrf_token(tenant: Tenant) -> None:
    with signed_in(tenant) as web:
        page = web.get("/d/prod")
        assert page.status_code == 200
        csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        for headers, data in (
            ({"Origin": "http://127.0.0.1:1"}, {"csrf_token": csrf}),  # same site, other port
            ({"Sec-Fetch-Site": "same-site"}, {"csrf_token": csrf}),
            ({"Origin": tenant.cp.url}, {"csrf_token": "guessed"}),
            ({"Origin": tenant.cp.url}, {}),
        ):
            r = web.post("/sign-out", headers=headers, data=data)
            assert r.status_code == 403, headers
        assert web.get("/d/prod").status_code == 200  # still signed in
        r = web.post("/sign-out", headers={"Origin": tenant.cp.url}, data={"csrf_token": csrf})
        assert r.status_code == 303
        assert web.get("/d/prod").status_code == 303


def test_pages_carry_their_security_headers(tenant: Tenant) -> None:
    with signed_in(tenant) as web:
        r = web.get("/d/prod")
        policy = r.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-store"


def test_unknown_pages_answer_a_page_and_api_paths_json(tenant: Tenant) -> None:
    with signed_in(tenant) as web:
        r = web.get("/no/such/page")
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        # A dot segment is no name: it never reaches another API path.
        r = web.get("/d/prod/runs/%2E%2E/steps")
        assert r.status_code == 404
        r = web.get("/api/v1/nothing", headers={"Authorization": f"Bearer {tenant.user_token}"})
        assert r.status_code == 404 and r.headers["content-type"] == "application/json"

"""OAuth 1.0a as WooCommerce takes it: RFC 5849's known vectors, and the emulator's check of what the source signs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import httpx

from hub_plugins.woocommerce import oauth
from hub_plugins.woocommerce._state import DEFAULT_KEY, DEFAULT_SECRET
from hub_plugins.woocommerce.emulator import API
from tests.plugins.woocommerce.conftest import Shop


def test_the_base_string_of_rfc_5849_section_3_4_1_1() -> None:
    url = httpx.URL("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b")
    params = [
        *url.params.multi_items(),
        ("c2", ""),  # the form body: c2&a3=2+q
        ("a3", "2 q"),
        ("oauth_consumer_key", "9djdj82h48djs9d2"),
        ("oauth_token", "kkk9d7dh3k39sjv7"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "137131201"),
        ("oauth_nonce", "7d8f3e4a"),
        ("oauth_signature", "bYT5CMsGcbgUdFHObYMEfcx6bsw%3D"),  # left out of the base string
    ]
    assert oauth.base_string("POST", url, params) == (
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D"
        "%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1"
        "%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
    )


def test_the_signature_of_the_oauth_core_appendix_a_example() -> None:
    url = httpx.URL("http://photos.example.net/photos?file=vacation.jpg&size=original")
    params = [
        *url.params.multi_items(),
        ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
        ("oauth_token", "nnch734d00sl2jdk"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "1191242096"),
        ("oauth_nonce", "kllo9940pd9333jh"),
        ("oauth_version", "1.0"),
    ]
    text = oauth.base_string("GET", url, params)
    assert oauth.sign(text, "kd94hf93k423kf44", "HMAC-SHA1", "pfkkdhi9sl3r4s00") == "tR3+Ty81lMeYAr/Fid0kMTYa/WM="


def test_a_one_legged_hmac_sha256_request_is_signed_with_the_secret_and_an_ampersand() -> None:
    auth = oauth.OAuth1QueryAuth("ck_1", "cs_2", clock=lambda: 1736154000, nonce=lambda: "abc")
    request = next(auth.auth_flow(httpx.Request("GET", "http://woo.test:8080/wp-json/wc/v3/orders?per_page=5")))
    text = (
        "GET&http%3A%2F%2Fwoo.test%3A8080%2Fwp-json%2Fwc%2Fv3%2Forders&oauth_consumer_key%3Dck_1%26oauth_nonce%3Dabc"
        "%26oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D1736154000%26per_page%3D5"
    )
    expected = base64.b64encode(hmac.new(b"cs_2&", text.encode(), hashlib.sha256).digest()).decode()
    assert request.url.params["oauth_signature"] == expected
    assert request.url.params["per_page"] == "5" and "Authorization" not in request.headers


def test_the_scheme_picks_basic_over_https_and_oauth_over_http() -> None:
    assert isinstance(oauth.auth_for("auto", "https://shop.no", "ck", "cs", "HMAC-SHA256"), httpx.BasicAuth)
    assert isinstance(oauth.auth_for("auto", "http://shop.no", "ck", "cs", "HMAC-SHA256"), oauth.OAuth1QueryAuth)
    assert isinstance(oauth.auth_for("query", "https://shop.no", "ck", "cs", "HMAC-SHA256"), oauth.QueryCredentialsAuth)


def _get(shop: Shop, auth: httpx.Auth, **params: str) -> httpx.Response:
    return shop.client.get(f"{API}/orders", params={"per_page": "5", **params}, auth=auth)


def test_the_emulator_takes_both_signature_methods(shop: Shop) -> None:
    for method in ("HMAC-SHA1", "HMAC-SHA256"):
        auth = oauth.OAuth1QueryAuth(DEFAULT_KEY, DEFAULT_SECRET, method=method)
        response = _get(shop, auth, status="any,trash")  # a comma: signed as decoded text, sent encoded
        assert response.status_code == 200, response.text


def test_a_reused_nonce_is_refused(shop: Shop) -> None:
    auth = oauth.OAuth1QueryAuth(DEFAULT_KEY, DEFAULT_SECRET, nonce=lambda: "same-every-time")
    assert _get(shop, auth).status_code == 200
    again = _get(shop, auth)
    assert again.status_code == 401
    assert again.json()["message"] == "Invalid nonce - nonce has already been used."


def test_a_timestamp_off_by_more_than_15_minutes_is_refused(shop: Shop) -> None:
    auth = oauth.OAuth1QueryAuth(DEFAULT_KEY, DEFAULT_SECRET, clock=lambda: time.time() - 16 * 60)
    response = _get(shop, auth)
    assert (response.status_code, response.json()["message"]) == (401, "Invalid timestamp.")


def test_a_wrong_secret_is_a_signature_that_does_not_match(shop: Shop) -> None:
    response = _get(shop, oauth.OAuth1QueryAuth(DEFAULT_KEY, "cs_wrong"))
    assert response.json() == {
        "code": "woocommerce_rest_authentication_error",
        "message": "Invalid signature - provided signature does not match.",
        "data": {"status": 401},
    }

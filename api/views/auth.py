"""Tokens for integrators: a username and password in, the user's token out."""

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser

from api.parsers import StrictJSONParser
from api.throttles import TokenAddressThrottle, TokenUsernameThrottle


class TokenView(ObtainAuthToken):
    """A token for a username and password. Throttled per username and per client
    address, so no password is guessed at the network's speed: a throttled call is
    a 429 with Retry-After."""

    throttle_classes = [TokenUsernameThrottle, TokenAddressThrottle]
    parser_classes = [StrictJSONParser, FormParser, MultiPartParser]

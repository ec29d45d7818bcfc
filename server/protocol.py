"""Every wire format of /v1: the event batch the tag posts and the answer it gets back.

Events form a tagged union on "type", actions a tagged union on "kind"; each action kind maps one-to-one
to a renderer module of the tag (widget/<kind>.js).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct, field

MAX_EVENTS_PER_BATCH = 100
MAX_BODY_BYTES = 64 * 1024
MAX_ARMED = 100

SiteKey = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
# The tag makes 128-bit random ids (32 hex chars); other clients may use any url-safe id of that strength.
VisitorId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
ItemId = Annotated[str, Meta(min_length=1, max_length=100)]
Text = Annotated[str, Meta(max_length=300)]
Url = Annotated[str, Meta(max_length=2048)]
Money = Annotated[float, Meta(ge=0, le=1e9)]
Quantity = Annotated[int, Meta(ge=1, le=10_000)]
Timestamp = Annotated[int, Meta(ge=0)]
# A slot on a page (`<div data-storetag-slot="NAME">`) and a recommendation strategy's name.
SlotName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
StrategyName = Annotated[str, Meta(pattern=r"^[a-z_]{1,30}$")]
Availability = Literal["in_stock", "out_of_stock", "preorder", "backorder"]


class Base(Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class Props(Struct, omit_defaults=True):
    """Event properties: unknown fields are ignored, so a newer tag never breaks an older server."""


class PageProps(Props):
    page_type: Text = ""
    title: Text = ""
    lang: Text = ""
    # The recommendation slots on this page, for rules to fill.
    slots: Annotated[list[SlotName], Meta(max_length=10)] = []


class ProductProps(Props):
    id: ItemId
    name: Text = ""
    price: Money = 0.0
    category: Text = ""
    # Catalog fields (see CatalogRow): they describe a product the catalog does not know yet.
    title: Text = ""
    url: Url = ""
    image_url: Url = ""
    sale_price: Money | None = None
    currency: Text = ""
    brand: Text = ""
    availability: Availability | None = None


class CategoryProps(Props):
    id: ItemId


class SearchProps(Props):
    query: Text


class CartLineProps(Props):
    id: ItemId
    qty: Quantity = 1
    price: Money = 0.0
    name: Text = ""
    category: Text = ""


class CheckoutProps(Props):
    pass


class PurchaseProps(Props):
    order_id: ItemId
    value: Money
    items: Annotated[list[CartLineProps], Meta(max_length=100)] = []
    code: Text = ""


class IdentifyProps(Props):
    customer_id: ItemId
    # HMAC-SHA256(site secret, customer_id), hex, made by the shop's backend.
    signature: Text = ""


class SignupProps(Props):
    source: Text = ""


class ActionEventProps(Props):
    action: ItemId


class PushProps(Props):
    pass


class PushDeniedProps(Props):
    # "unsupported": the browser cannot take web push (no service worker or PushManager); otherwise the
    # visitor refused the permission, now or before.
    reason: Text = ""


class PushClickedProps(Props):
    # The push's id and the rule that sent it ("" for a push sent through the admin API).
    push: ItemId
    rule: Text = ""
    # Which of the notification's buttons was clicked ("" for the notification itself).
    action: Text = ""


class SurveyAnswerProps(Props):
    action: ItemId
    answer: Text


class RecsShownProps(Props):
    slot: SlotName
    strategy: StrategyName
    items: Annotated[list[ItemId], Meta(max_length=50)] = []


class RecsClickedProps(Props):
    slot: SlotName
    strategy: StrategyName
    item: ItemId


class EventBase(Base, tag_field="type", kw_only=True):
    ts: Timestamp = 0
    url: Url = ""
    ref: Url = ""


class PageView(EventBase, tag="page_view"):
    props: PageProps = field(default_factory=PageProps)


class ProductView(EventBase, tag="product_view"):
    props: ProductProps


class CategoryView(EventBase, tag="category_view"):
    props: CategoryProps


class Search(EventBase, tag="search"):
    props: SearchProps


class CartAdd(EventBase, tag="cart_add"):
    props: CartLineProps


class CartRemove(EventBase, tag="cart_remove"):
    props: CartLineProps


class CheckoutStart(EventBase, tag="checkout_start"):
    props: CheckoutProps = field(default_factory=CheckoutProps)


class Purchase(EventBase, tag="purchase"):
    props: PurchaseProps


class Identify(EventBase, tag="identify"):
    props: IdentifyProps


class Signup(EventBase, tag="signup"):
    props: SignupProps = field(default_factory=SignupProps)


class ActionShown(EventBase, tag="action_shown"):
    props: ActionEventProps


class ActionClicked(EventBase, tag="action_clicked"):
    props: ActionEventProps


class ActionClosed(EventBase, tag="action_closed"):
    props: ActionEventProps


class PushSubscribed(EventBase, tag="push_subscribed"):
    props: PushProps = field(default_factory=PushProps)


class PushUnsubscribed(EventBase, tag="push_unsubscribed"):
    props: PushProps = field(default_factory=PushProps)


class PushDenied(EventBase, tag="push_denied"):
    """The visitor refused the browser's permission dialog, or the browser cannot take web push: never
    asked again."""

    props: PushDeniedProps = field(default_factory=PushDeniedProps)


class PushClicked(EventBase, tag="push_clicked"):
    props: PushClickedProps


class SurveyAnswer(EventBase, tag="survey_answer"):
    props: SurveyAnswerProps


class RecsShown(EventBase, tag="recs_shown"):
    props: RecsShownProps


class RecsClicked(EventBase, tag="recs_clicked"):
    props: RecsClickedProps


Event = (
    PageView
    | ProductView
    | CategoryView
    | Search
    | CartAdd
    | CartRemove
    | CheckoutStart
    | Purchase
    | Identify
    | Signup
    | ActionShown
    | ActionClicked
    | ActionClosed
    | PushSubscribed
    | PushUnsubscribed
    | PushDenied
    | PushClicked
    | SurveyAnswer
    | RecsShown
    | RecsClicked
)

EVENT_TYPES: frozenset[str] = frozenset(str(cls.__struct_config__.tag) for cls in Event.__args__)


def type_of(event: Event) -> str:
    return str(event.__struct_config__.tag)


class EventBatch(Base):
    site: SiteKey
    visitor: VisitorId
    session: VisitorId
    events: list[Event]
    # A random id per batch: a batch retried from the tag's queue is applied once.
    batch: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{8,64}$")] | None = None
    # The ids of the actions the page holds armed, when no other batch of its awaits an answer: the answer
    # withdraws only among them. None (no such list, or a batch in flight): among those this session's
    # answers gave and that have not fired or been withdrawn since.
    armed: Annotated[list[ItemId], Meta(max_length=MAX_ARMED)] | None = None


class ActionBase(Base, tag_field="kind"):
    id: str
    trigger: str
    # Epoch milliseconds after which the tag must not fire the action.
    expires: int


class PopupAction(ActionBase, tag="popup"):
    html: str


class OfferAction(ActionBase, tag="offer"):
    """A pop-up carrying a discount code; drawn by the same renderer as a popup."""

    html: str
    code: str
    # Epoch milliseconds when the code stops being valid (the countdown's end).
    offer_expires: int


class RecItem(Base):
    """A recommended product as a shop that renders itself needs it."""

    id: str
    title: str
    url: str = ""
    image_url: str = ""
    price: float | None = None
    sale_price: float | None = None
    currency: str = ""
    # The price to show, formatted for the site's locale and the product's currency; on sale, the old one.
    price_text: str = ""
    was_price_text: str = ""
    category: str = ""
    brand: str = ""
    attributes: dict[str, str] = {}


class RecsAction(ActionBase, tag="recs"):
    slot: str
    strategy: str
    html: str
    items: list[RecItem]


class PushPromptAction(ActionBase, tag="push_prompt"):
    """The soft prompt: explains the pushes in the shop's words; only its "allow" button asks the browser."""

    html: str


Action = PopupAction | OfferAction | RecsAction | PushPromptAction


class Answer(Struct):
    actions: list[Action]
    # Ids of armed actions the tag must drop because their conditions no longer hold; "*" drops all.
    withdraw: list[str] = []


class ErrorBody(Struct):
    error: str


class DegradedAnswer(Answer, kw_only=True):
    """The 503 answer while Redis is unreachable: nothing to show, and the tag keeps the batch to resend."""

    error: str


# The admin API (/v1/admin, bearer token)

CouponCode = Annotated[str, Meta(min_length=3, max_length=64)]


class PoolUpload(Base):
    codes: Annotated[list[CouponCode], Meta(min_length=1, max_length=100_000)]


class PoolSize(Struct):
    pool: str
    size: int
    added: int = 0


class CouponVerdict(Struct, omit_defaults=True):
    code: str
    valid: bool
    # Why it is not valid: "unknown code", "bad signature: …", "expired", "already redeemed".
    reason: str = ""
    rule: str = ""
    percent: int = 0
    expires: int = 0
    redeemed: int = 0


class Redemption(Base):
    order_id: ItemId
    value: Money = 0.0


class RuleTotals(Struct):
    days: int
    # rule id → offered, lost, shown, clicked, closed, redeemed, revenue
    rules: dict[str, dict[str, float]]


class RecsQuery(Base):
    """GET /v1/recs: the slot's recommendations for this visitor, as the tag would get them."""

    site: SiteKey
    visitor: VisitorId
    slot: SlotName
    # The product on the page, if any.
    item: ItemId | None = None


HttpUrl = Annotated[str, Meta(max_length=2048, pattern=r"^https?://[^\s]+$")]
Attributes = Annotated[dict[Annotated[str, Meta(max_length=50)], Text], Meta(max_length=30)]


class CatalogRow(Base):
    """One product of a catalog import, in merchant-feed terms. `category` is a path like `Home > Mugs`."""

    id: ItemId
    title: Text
    price: Money
    url: HttpUrl | None = None
    image_url: HttpUrl | None = None
    sale_price: Money | None = None
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] | None = None
    category: Text = ""
    brand: Text = ""
    availability: Availability = "in_stock"
    attributes: Attributes = {}


class CatalogReport(Base):
    loaded: int
    refused: list[str] = []


class RecsStat(Struct):
    """What one slot filled by one strategy did: slot impressions, clicks, and the orders and revenue of
    recommended items bought after a click in the same session."""

    slot: str
    strategy: str
    shown: int = 0
    clicks: int = 0
    orders: int = 0
    revenue: float = 0.0


class RecsStats(Struct):
    stats: list[RecsStat]


# Web push (/v1/push): the subscription the tag posts and the notification the service worker shows.

# Base64url without padding, as PushSubscription.toJSON() writes keys.
Base64Url = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]+$", max_length=200)]


class PushKeys(Base):
    # The browser's P-256 public key (65 bytes uncompressed) and its 16-byte auth secret.
    p256dh: Base64Url
    auth: Base64Url


class PushSubscription(Struct, omit_defaults=True, rename={"expiration_time": "expirationTime"}):
    """PushSubscription.toJSON() as browsers write it (unknown fields ignored, as browsers add some)."""

    endpoint: Url
    keys: PushKeys
    expiration_time: int | None = None


class Subscribe(Base):
    site: SiteKey
    visitor: VisitorId
    subscription: PushSubscription


class Unsubscribe(Base):
    site: SiteKey
    visitor: VisitorId
    endpoint: Url


class NotificationButton(Base):
    action: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
    title: Text
    url: Url = ""


class NotificationContent(Base, kw_only=True):
    """What a notification shows, and where a click on it (or on one of its buttons) goes."""

    title: Text
    body: Text = ""
    icon: Url = ""
    image: Url = ""
    url: Url = ""
    buttons: Annotated[list[NotificationButton], Meta(max_length=2)] = []


class Notification(NotificationContent, kw_only=True):
    """The encrypted payload of a push: what the service worker shows, and where a click goes. `api`,
    `site` and `visitor` let the worker report the click (it has no access to the page's storage)."""

    push: ItemId
    rule: Text = ""
    api: Url = ""
    site: str = ""
    visitor: str = ""


class Subscribed(Struct):
    """POST /v1/push/subscriptions answered: the stored device's id within the visitor's devices."""

    device: str


# The admin API's web push: send now, per-push and per-rule stats, dead letters.

Urgency = Literal["very-low", "low", "normal", "high"]
# RFC 8030: a topic is at most 32 characters of the URL-safe base64 alphabet.
Topic = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
TtlSeconds = Annotated[int, Meta(ge=0, le=28 * 86400)]


class PushSend(NotificationContent, kw_only=True):
    """POST /v1/admin/sites/{site}/push: a notification now, to exactly one of a visitor (all their devices
    and, once identified, the customer's), a customer id, a named segment, or every subscriber."""

    visitor: VisitorId | None = None
    customer: ItemId | None = None
    segment: Annotated[str, Meta(max_length=100)] | None = None
    all: bool = False
    ttl: TtlSeconds = 86400
    urgency: Urgency = "normal"
    topic: Topic | None = None

    def __post_init__(self) -> None:
        chosen = [self.visitor is not None, self.customer is not None, self.segment is not None, self.all]
        if sum(chosen) != 1:
            raise ValueError("name exactly one of visitor, customer, segment or all=true")


class PushQueued(Struct):
    """The push's id, for its stats: the workers find its audience (a segment or every subscriber page by
    page), so how many it reaches shows there as they go."""

    push: str


class PushCounts(Struct):
    """Visitors it was queued for (for a segment or all, growing while the workers expand it), deliveries
    started (one per device), accepted by the push service (2xx), clicked, and failed by reason (gone,
    http_429, http_500, network, unsafe_endpoint …); `retried` counts retries scheduled."""

    visitors: int = 0
    sent: int = 0
    delivered: int = 0
    clicked: int = 0
    retried: int = 0
    failed: dict[str, int] = {}


class PushStats(Struct):
    push: str
    rule: str
    counts: PushCounts


class PushRuleStats(Struct):
    # Rule id ("" for pushes sent through the admin API) → its pushes' counts.
    rules: dict[str, PushCounts]


class DeadLetter(Struct):
    push: str
    rule: str
    visitor: str
    endpoint: str
    reason: str
    at: int


class DeadLetters(Struct):
    dead: list[DeadLetter]


batch_decoder = msgspec.json.Decoder(EventBatch)
answer_encoder = msgspec.json.Encoder()

"""Fixed answers for requests the assistant cannot perform, and for messages that are not about the shop.

A service request (account, payment, complaint, privacy, one's own order) gets one fixed text per reason and
language: what the assistant cannot do, then the customer-service contact details, which are read from the
catalogue's customer-service page (``CUSTOMER_SERVICE_DOC``), never written here, so that the text states no
channel, right or procedure the shop's documents do not contain. An off-topic message gets a short text saying what
the assistant helps with. No LLM is called for either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Language = Literal["nl", "en"]

CUSTOMER_SERVICE_DOC = "klantenservice"  # data/catalogue/policies/klantenservice.md
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(r"(?<![\w-])(?:\+31[\s-]?|0)\d{2,3}[\s-]?\d{6,7}(?![\w-])")

_CANNOT: dict[tuple[str, Language], str] = {
    ("account", "nl"): "Je account en je gegevens kan ik niet inzien of wijzigen.",
    ("account", "en"): "I can't see or change your account or your details.",
    ("privacy", "nl"): "Je persoonsgegevens kan ik niet inzien, wijzigen of verwijderen.",
    ("privacy", "en"): "I can't see, change or delete your personal data.",
    ("payment", "nl"): "Betalingen en terugbetalingen kan ik niet inzien of wijzigen.",
    ("payment", "en"): "I can't see or change payments or refunds.",
    ("complaint", "nl"): "Wat vervelend dat je niet tevreden bent. Dit kan ik zelf niet voor je oplossen.",
    ("complaint", "en"): "I'm sorry to hear you are not satisfied. I can't resolve this for you myself.",
    ("order", "nl"): "Bestellingen kan ik niet inzien of wijzigen.",
    ("order", "en"): "I can't see or change orders.",
}
_CONTACT_NL = "Onze klantenservice helpt je graag: {channels}."
_CONTACT_EN = "Our customer service will be happy to help: {channels}."
_NO_DETAILS_NL = "Neem contact op met onze klantenservice, dan helpen zij je verder."
_NO_DETAILS_EN = "Please contact our customer service; they will be happy to help."

OFF_TOPIC_NL = (
    "Daar kan ik je niet mee helpen. Ik beantwoord vragen over de producten van onze kattenwinkel, "
    "verzending, retourneren, garantie en betalen."
)
OFF_TOPIC_EN = (
    "I can't help you with that. I answer questions about the products of our cat-supplies shop, "
    "shipping, returns, warranty and payment."
)


@dataclass(frozen=True)
class Contact:
    """The customer-service channels found on the shop's own page (empty when it has none)."""

    email: str = ""
    phone: str = ""

    @classmethod
    def from_text(cls, texts: Iterable[str]) -> Contact:
        """The first e-mail address and the first phone number in ``texts`` (the customer-service page's lines)."""
        joined = "\n".join(texts)
        email = _EMAIL.search(joined)
        phone = _PHONE.search(joined)
        return cls(email.group(0) if email else "", phone.group(0) if phone else "")


def _channels(contact: Contact, language: Language) -> str:
    """The channels as words ("mail naar … of bel …" / "e-mail … or call …"); "" when the page has none."""
    channels: list[str] = []
    if contact.email:
        channels.append(f"mail naar {contact.email}" if language == "nl" else f"e-mail {contact.email}")
    if contact.phone:
        channels.append(f"bel {contact.phone}" if language == "nl" else f"call {contact.phone}")
    return (" of " if language == "nl" else " or ").join(channels)


def contact_sentence(contact: Contact, language: Language) -> str:
    """The sentence with the route to customer service and the page's own channels."""
    channels = _channels(contact, language)
    if not channels:
        return _NO_DETAILS_NL if language == "nl" else _NO_DETAILS_EN
    return (_CONTACT_NL if language == "nl" else _CONTACT_EN).format(channels=channels)


def service_answer(reason: str, contact: Contact, language: Language) -> str:
    """The fixed answer to a service request: what the assistant cannot do, then how to reach customer service."""
    cannot = _CANNOT.get((reason, language)) or _CANNOT[("account", language)]
    return f"{cannot} {contact_sentence(contact, language)}"


def route_note(contact: Contact, language: Language) -> str:
    """Appended to an answer whose message also held a service request: the route for that part."""
    channels = _channels(contact, language)
    if language == "nl":
        return (
            f"Voor de rest van je bericht kun je terecht bij onze klantenservice{': ' + channels if channels else ''}."
        )
    return f"For the rest of your message, please contact our customer service{': ' + channels if channels else ''}."


def off_topic_answer(language: Language) -> str:
    """The short text saying what the assistant helps with."""
    return OFF_TOPIC_NL if language == "nl" else OFF_TOPIC_EN


def all_fixed_texts(contact: Contact) -> set[str]:
    """Every text this module can answer with (the security suite's judge recognises them)."""
    texts = {OFF_TOPIC_NL, OFF_TOPIC_EN}
    for reason, language in _CANNOT:
        texts.add(service_answer(reason, contact, language))
    return texts

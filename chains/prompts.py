"""Prompt constants for the shop assistant.

The system prompt carries instructions only. Retrieved documents never go into the
system prompt: they are placed in a delimited context block inside the user turn
(see ``chains.context.format_context``), so that instructions inside documents are
treated as data.
"""

from __future__ import annotations

SYSTEM_PROMPT_NL = (
    "Je bent de klantenservice-assistent van een Nederlandse webshop voor kattenbenodigdheden. "
    "Beantwoord de vraag in één korte zin, alleen met een feit uit de regels in de documenten. "
    "Neem prijzen, getallen en namen letterlijk over."
)

SYSTEM_PROMPT_EN = (
    "You are the customer-service assistant of a Dutch web shop for cat supplies. "
    "Answer the question in one short sentence, using only a fact from the lines in the documents. "
    "Copy prices, numbers and names exactly."
)

# A per-deployment random canary goes into the system prompt; the output filter blocks any
# answer that contains it (proof that the system prompt leaked).
CANARY_LINE = "Interne referentie (nooit noemen): {canary}."


def system_prompt(language: str, canary: str) -> str:
    """The system prompt for ``language`` with the deployment's canary."""
    base = SYSTEM_PROMPT_EN if language == "en" else SYSTEM_PROMPT_NL
    return f"{base}\n{CANARY_LINE.format(canary=canary)}" if canary else base


# The user turn: the evidence lines in a delimited, escaped block, then the question.
USER_TEMPLATE_NL = "{context}\n\nVraag: {question}"
USER_TEMPLATE_EN = "{context}\n\nQuestion: {question}"

# Fixed fallback when nothing relevant was retrieved.
NO_CONTEXT_ANSWER_NL = (
    "Dat kan ik niet vinden in onze informatie. Neem contact op met onze klantenservice, dan helpen zij je verder."
)
NO_CONTEXT_ANSWER_EN = (
    "I could not find that in our information. Please contact our customer service; they will be happy to help."
)

# Fixed answers for questions outside the catalogue by design (chains.scope), with the route to customer service.
ORDER_ANSWER_NL = (
    "Ik kan geen bestellingen inzien, dus ik weet niet waar jouw bestelling is. Onze klantenservice kan je "
    "bestelling opzoeken: neem contact met ze op en houd je ordernummer bij de hand."
)
ORDER_ANSWER_EN = (
    "I can't look up orders, so I don't know where your order is. Our customer service can look it up for you: "
    "please contact them and keep your order number at hand."
)
OTHER_SPECIES_ANSWER_NL = (
    "We verkopen alleen producten voor katten, dus daar kan ik je niet mee helpen. Heb je een vraag over "
    "onze kattenproducten of je bestelling, dan helpt onze klantenservice je graag."
)
OTHER_SPECIES_ANSWER_EN = (
    "We only sell products for cats, so I can't help you with that. For questions about our cat "
    "products or your order, our customer service is happy to help."
)

UNKNOWN_VARIANT_ANSWER_NL = (
    "Dat model staat niet in ons assortiment, dus ik kan je daar geen prijs of gegevens van geven. "
    "Vraag gerust naar een model dat we wel hebben, of neem contact op met onze klantenservice."
)
UNKNOWN_VARIANT_ANSWER_EN = (
    "That model is not in our range, so I can't give you its price or details. Feel free to ask about a "
    "model we do sell, or contact our customer service."
)

# The fixed answer per route of chains.scope and language; none of them cites a document.
SCOPE_ANSWERS: dict[tuple[str, str], str] = {
    ("order", "nl"): ORDER_ANSWER_NL,
    ("order", "en"): ORDER_ANSWER_EN,
    ("other_species", "nl"): OTHER_SPECIES_ANSWER_NL,
    ("other_species", "en"): OTHER_SPECIES_ANSWER_EN,
    ("unknown_variant", "nl"): UNKNOWN_VARIANT_ANSWER_NL,
    ("unknown_variant", "en"): UNKNOWN_VARIANT_ANSWER_EN,
}

# One friendly, fixed refusal per language; it never says why in detail.
REFUSAL_NL = (
    "Sorry, daar kan ik je niet mee helpen. Ik beantwoord vragen over onze producten, "
    "verzending, retourneren en garantie. Voor andere vragen kun je terecht bij onze klantenservice."
)
REFUSAL_EN = (
    "Sorry, I can't help you with that. I answer questions about our products, shipping, "
    "returns and warranty. For anything else, please contact our customer service."
)

# Follow-up rewriting (/api/chat): the last question becomes one standalone question for retrieval.
# The examples end in "Antwoord:"/"Answer:" so that a base model continues with the rewritten question.
REWRITE_SYSTEM_NL = (
    "Herschrijf de laatste vraag van de klant tot één volledige vraag die zonder het gesprek te begrijpen is. "
    "Noem het product of onderwerp uit het gesprek bij naam. Geef alleen de vraag, zonder antwoord."
)
REWRITE_SYSTEM_EN = (
    "Rewrite the customer's last question as one complete question that can be understood without the "
    "conversation. Name the product or topic from the conversation. Give only the question, no answer."
)
REWRITE_USER_NL = (
    "Gesprek:\nKlant: Hoeveel kost de PurrClean AutoBox 9?\nAssistent: De PurrClean AutoBox 9 kost 249,95 euro.\n"
    "Vraag: En hoeveel liter is de afvalbak?\n"
    "Antwoord: Hoeveel liter is de afvalbak van de PurrClean AutoBox 9?\n\n"
    "Gesprek:\n{history}\nVraag: {question}"
)
REWRITE_USER_EN = (
    "Conversation:\nCustomer: How much is the PurrClean AutoBox 9?\n"
    "Assistant: The PurrClean AutoBox 9 costs 249.95 euros.\n"
    "Question: And how many litres is the waste bin?\n"
    "Answer: How many litres is the waste bin of the PurrClean AutoBox 9?\n\n"
    "Conversation:\n{history}\nQuestion: {question}"
)
REWRITE_SPEAKERS_NL = ("Klant", "Assistent")
REWRITE_SPEAKERS_EN = ("Customer", "Assistant")

# Query expansion (chains.llm_expansion): the LLM rewrites the question; one variant per line.
EXPANSION_PROMPT_NL = (
    "Schrijf {n} andere formuleringen van de vraag van een klant van een webshop voor kattenbenodigdheden, "
    "met andere woorden of synoniemen. Eén formulering per regel, zonder nummering of uitleg.\n\n"
    "Vraag: {question}\nFormuleringen:\n"
)
EXPANSION_PROMPT_EN = (
    "Write {n} other phrasings of a question from a customer of a web shop for cat supplies, "
    "using other words or synonyms. One phrasing per line, no numbering, no explanation.\n\n"
    "Question: {question}\nPhrasings:\n"
)

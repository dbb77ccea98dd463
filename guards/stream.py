"""One checker for everything that inspects the model's outgoing text, a sentence at a time.

``SentenceStream`` is fed the model's tokens and releases only whole sentences that passed every stage, in
order: **markup** (HTML, scripts and Markdown links/images removed), **echo** (no long span of the question the
evidence lacks), **claims** (``chains.claims``: every sentence
supported by an evidence line) and **leaks** (``guards.output.OutputFilter``: canary, system prompt, secrets,
internals, ungrounded codes and links). The first failing sentence ends the generated text: neither it nor
anything after it is released. A last sentence cut by the token limit is dropped. The graph's ``check`` node
runs the same object over the whole draft, and the API's stream over the live tokens, so both release the
same text. Stages are objects with a ``stage`` name and a ``check`` method: more can be added (issue #16).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from chains.answer import cut_at_marker
from chains.claims import ClaimChecker, split_sentences
from chains.coverage import topic_words
from chains.lexicon import content_words, in_vocabulary, words
from chains.normalize import fact_spans, normalise_text
from core.evidence import EvidenceLine
from guards.markup import ECHO_MIN_CHARS, echoed_span, strip_markup
from guards.output import OutputFilter

Stage = Literal["markup", "echo", "claims", "leaks"]


@dataclass(frozen=True, kw_only=True)
class StageVerdict:
    """One stage's decision on one sentence."""

    ok: bool
    stage: Stage
    reason: str = "ok"
    line: EvidenceLine | None = None  # the supporting evidence line (claims stage)
    text: str | None = None  # the sentence as the next stages see it and the shopper gets it (markup removed)


class SentenceCheck(Protocol):
    """A stage of the stream check."""

    stage: Stage

    def check(self, sentence: str, before: str) -> StageVerdict:
        """Decide on ``sentence``; ``before`` is the text already released."""
        ...


class MarkupCheck:
    """No markup leaves in an answer: it is removed (``guards.markup``), and a sentence of nothing else fails."""

    stage: Stage = "markup"

    def check(self, sentence: str, before: str) -> StageVerdict:
        """The sentence without HTML, script URLs and Markdown links/images; fail when nothing is left."""
        plain = strip_markup(sentence)
        if " ".join(plain.split()) == " ".join(sentence.split()):
            return StageVerdict(ok=True, stage=self.stage)
        if not content_words(normalise_text(plain)):
            return StageVerdict(ok=False, stage=self.stage, reason="markup")
        return StageVerdict(ok=True, stage=self.stage, reason="markup_removed", text=plain)


@dataclass(kw_only=True)
class EchoCheck:
    """A sentence that parrots a long span of the question the evidence lacks fails (a payload sent back)."""

    question: str
    context: str
    min_chars: int = ECHO_MIN_CHARS
    stage: Stage = "echo"

    def check(self, sentence: str, before: str) -> StageVerdict:
        """Fail when ``sentence`` repeats at least ``min_chars`` characters of the question not in the evidence."""
        if len(echoed_span(sentence, self.question, self.context)) >= self.min_chars:
            return StageVerdict(ok=False, stage=self.stage, reason="echo")
        return StageVerdict(ok=True, stage=self.stage)


@dataclass(kw_only=True)
class ClaimsCheck:
    """Every sentence needs an evidence line that supports it (``chains.claims``).

    A sentence of nothing but facts ("10 liter.") claims them of what the question asks about: it is checked with
    the question's content words, so that the line must be about that too (not a line about a 10-litre bin bag).
    """

    checker: ClaimChecker
    evidence: Sequence[EvidenceLine]
    language: str = "nl"
    question: str = ""
    stage: Stage = "claims"

    def _claim(self, sentence: str) -> str:
        rest, spans = sentence, fact_spans(sentence)
        for _fact, start, end in reversed(spans):
            rest = f"{rest[:start]} {rest[end:]}"
        if not self.question or not spans or content_words(normalise_text(rest)):  # "Zeker." claims nothing
            return sentence
        topic = " ".join(topic_words(self.question))
        return f"{sentence.rstrip(' .!?')} {topic}." if topic else sentence

    def adds_nothing(self, sentence: str) -> bool:
        """The sentence says nothing the question did not: no content word or fact of its own.

        "Ja.", "Nee, dat kan niet.", "Ja, je hebt een extra kattenbak nodig.": a yes or no cannot be checked against
        a line, so the line that answers is quoted instead.
        """
        if not self.question:
            return False
        asked = frozenset(words(normalise_text(self.question)))
        if any(not in_vocabulary(w, asked) for w in content_words(normalise_text(sentence))):
            return False
        known = {fact.value for fact, _, _ in fact_spans(self.question)}
        return all(fact.value in known for fact, _, _ in fact_spans(sentence))

    def check(self, sentence: str, before: str) -> StageVerdict:
        """The claim checker's verdict as a stage verdict; a sentence that adds nothing to the question fails."""
        if self.adds_nothing(sentence):
            return StageVerdict(ok=False, stage=self.stage, reason="nothing_new")
        verdict = self.checker.check(self._claim(sentence), self.evidence, language=self.language)
        return StageVerdict(ok=verdict.ok, stage=self.stage, reason=verdict.reason, line=verdict.line)


@dataclass(kw_only=True)
class LeakCheck:
    """The output filter over everything released so far plus this sentence."""

    output_filter: OutputFilter
    context: str | None = None  # the evidence's text: codes and links must occur in it
    stage: Stage = "leaks"

    def check(self, sentence: str, before: str) -> StageVerdict:
        """Fail when the text with this sentence leaks, or has a code or link the evidence lacks."""
        verdict = self.output_filter.check(f"{before} {sentence}".strip(), self.context)
        if verdict.decision == "block":
            return StageVerdict(ok=False, stage=self.stage, reason=",".join(verdict.reasons))
        return StageVerdict(ok=True, stage=self.stage)


@dataclass
class SentenceStream:
    """Feed the model's text; get back only whole sentences that passed every stage."""

    checks: Sequence[SentenceCheck]
    cut_runon: bool = True
    text: str = ""  # the model's text so far (up to a run-on marker)
    passed: list[str] = field(default_factory=list)
    supporting: list[EvidenceLine] = field(default_factory=list)
    failure: StageVerdict | None = None
    ended: bool = False  # the model ran on into our markup or repeated a sentence: the rest is ignored
    _done: int = 0  # sentences of ``text`` already decided
    _repeated: bool = False

    @property
    def released(self) -> str:
        """The text released so far (the passed sentences, one space apart)."""
        return " ".join(self.passed)

    @property
    def stopped(self) -> bool:
        """A sentence failed: nothing more will be released."""
        return self.failure is not None

    @property
    def done(self) -> bool:
        """Nothing the model says from now on will be used (a failure, run-on markup or a repetition)."""
        return self.stopped or self.ended

    def _decide(self, sentence: str) -> str:
        sentence = sentence.strip()
        if not sentence or self.stopped or self._repeated:
            return ""
        if " ".join(sentence.casefold().split()) in {" ".join(p.casefold().split()) for p in self.passed}:
            self.ended = self._repeated = True  # a small model repeating itself: complete; the rest is dropped
            return ""
        before = self.released
        for stage in self.checks:
            verdict = stage.check(sentence, before)
            if not verdict.ok:
                self.failure = verdict
                return ""
            if verdict.line is not None:
                self.supporting.append(verdict.line)
            sentence = verdict.text if verdict.text is not None else sentence
        self.passed.append(sentence)
        return f" {sentence}" if before else sentence

    def feed(self, token: str) -> str:
        """Add model text; return what may be sent now (whole sentences that passed)."""
        if self.stopped or self.ended:
            return ""
        if self.cut_runon:
            self.text, self.ended = cut_at_marker(self.text + token)
        else:
            self.text += token
        sentences, _rest = split_sentences(self.text, final=False)
        out = "".join(self._decide(s) for s in sentences[self._done :])
        self._done = len(sentences)
        return out

    def finish(self, *, truncated: bool = False) -> str:
        """The model stopped: decide the last sentence (dropped when ``truncated`` by the token limit)."""
        if self.stopped or self._repeated:
            return ""
        sentences, _rest = split_sentences(self.text, final=not truncated)
        out = "".join(self._decide(s) for s in sentences[self._done :])
        self._done = len(sentences)
        return out


def sentence_stream(
    *,
    checker: ClaimChecker | None,
    evidence: Sequence[EvidenceLine],
    language: str,
    output_filter: OutputFilter,
    cut_runon: bool = True,
    question: str = "",
) -> SentenceStream:
    """The stages in their order: markup, echo, claims (skipped when ``checker`` is None), leaks."""
    context = "\n".join(f"{line.title}\n{line.text}" for line in evidence)
    stages: list[SentenceCheck] = [MarkupCheck(), EchoCheck(question=question, context=context)]
    if checker is not None:
        stages.append(ClaimsCheck(checker=checker, evidence=evidence, language=language, question=question))
    stages.append(LeakCheck(output_filter=output_filter, context=context))
    return SentenceStream(checks=stages, cut_runon=cut_runon)

"""Builds and compiles the graph; ``graph`` is what LangGraph Studio and the server load."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from graph import conversation, gates, nodes, trust
from graph.context import Context
from graph.state import InputState, OutputState, State


def build_graph(conversational: bool = False) -> StateGraph[Any, Context, Any, OutputState]:
    """Wire guard → scope → expand → retrieve → rerank → evidence → prompt → generate → check → output filter.

    ``conversational`` (the server's ``/api/chat`` graph, compiled with a checkpointer) adds
    ``rewrite`` after the guard (before ``scope``) and ``remember`` at the end, over ``ConversationState``.
    """
    builder: StateGraph[Any, Context, Any, OutputState]
    if conversational:
        builder = StateGraph(
            conversation.ConversationState,
            input_schema=conversation.ConversationInput,
            output_schema=OutputState,
            context_schema=Context,
        )
        builder.add_node("rewrite", conversation.rewrite)
        builder.add_node("remember", conversation.remember)
        builder.add_edge("rewrite", "scope")
        builder.add_edge("remember", END)
    else:
        builder = StateGraph(State, input_schema=InputState, output_schema=OutputState, context_schema=Context)
    after_guard, end = ("rewrite", "remember") if conversational else ("scope", END)
    builder.add_node("guard", gates.guard)
    builder.add_node("scope", gates.scope)
    builder.add_node("expand", nodes.expand)
    builder.add_node("retrieve", nodes.retrieve)
    builder.add_node("rerank", nodes.rerank)
    builder.add_node("evidence", trust.evidence)
    builder.add_node("prompt", nodes.prompt)
    builder.add_node("generate", nodes.generate)
    builder.add_node("check", trust.check)
    builder.add_node("output_filter", gates.output_filter)
    builder.add_edge(START, "guard")
    builder.add_conditional_edges("guard", gates.route_after_guard, {"scope": after_guard, END: end})
    builder.add_conditional_edges("scope", gates.route_after_scope, {"expand": "expand", END: end})
    builder.add_edge("expand", "retrieve")
    builder.add_edge("retrieve", "rerank")
    builder.add_edge("rerank", "evidence")
    builder.add_edge("evidence", "prompt")
    builder.add_conditional_edges("prompt", nodes.route_after_prompt, {"generate": "generate", END: end})
    builder.add_edge("generate", "check")
    builder.add_edge("check", "output_filter")
    builder.add_edge("output_filter", end)
    return builder


graph = build_graph().compile(name="shop-assistant")

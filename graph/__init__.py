"""The shop assistant's LangGraph: guard → scope → expand → retrieve → rerank → prompt → generate."""

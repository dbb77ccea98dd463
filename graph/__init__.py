"""The shop assistant's LangGraph: guard → expand → retrieve → rerank → prompt → generate."""

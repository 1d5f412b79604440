"""The Phase III todo chatbot as a service on chatstore (``make example``).

A stateless FastAPI app (``POST /api/{user_id}/chat``) runs an OpenAI Agents SDK agent
whose memory is a :class:`chatstore.agents.ChatstoreSession`; its five task tools are
also served over MCP. Modules:

- ``app``: ``create_app(dsn)``, the pool's lifespan, chatstore errors as HTTP answers
- ``deps``: the pool, a connection, the agent, the current user (a demo stand-in)
- ``chat``: the chat route; ``conversations``: listing conversations and messages
- ``schemas``: the chat request and response bodies
- ``tools``: the five task tools, once; ``agent``: the agent and its function tools;
  ``mcp_server``: the same tools over MCP
- ``demo_model``: the offline stand-in for a model when OPENAI_API_KEY is unset
- ``__main__``: serve it (embedded PostgreSQL unless CHATSTORE_DSN names a server)
"""

"""Every request and response body of the HTTP API, a module per concern: questions (search, ask, citations),
chat (the OpenAI-compatible shapes), documents (documents, uploads, jobs, collections) and status (errors,
health); checks holds the validators they share."""

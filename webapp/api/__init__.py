"""The HTTP API under /api/v1 for shop back-ends and chatbots (docs/api.md).

    tokens     API tokens per merchant (shown once, stored hashed)
    errors     every error as JSON with the same plain words the pages show
    ratelimit  requests per minute and new jobs per hour, per token
    webhooks   the optional call when a job ends, signed with the merchant's secret
    openapi    the OpenAPI document served at /api/v1/openapi.json
    routes     the Starlette routes (webapp/routes.py adds them)

No Streamlit import: the routes run inside the server's Starlette app.
"""

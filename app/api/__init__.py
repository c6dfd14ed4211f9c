"""The integrator API, /api/v1: Bearer API keys, pydantic schemas, and the OpenAPI document built from them."""

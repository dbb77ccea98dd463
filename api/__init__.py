"""HTTP layer: request/response schemas, middleware, admin auth and the public runnable."""

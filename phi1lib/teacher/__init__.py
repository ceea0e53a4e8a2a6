"""The LLM teacher: one client for any OpenAI-compatible endpoint, and an offline teacher server.

Introduced in chapter 2 (synthetic textbooks) and the appendix on teacher endpoints.
"""

"""LLM backends contract, the one transport loop, structured output and the response
cache, used to generate procedure code from metadata.

Empty until the LLM work lands; backends register through
``proctor_register_llm_backends``.
"""

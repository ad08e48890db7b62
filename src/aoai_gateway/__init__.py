"""aoai-gateway: an OpenAI-compatible gateway in front of Azure OpenAI."""

__version__ = "0.1.0"

__all__ = ["__version__"]

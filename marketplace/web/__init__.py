"""Server-rendered web pages shared by every feature: home and error pages."""

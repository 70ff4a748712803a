"""Search engines and link previews: ``sitemap.xml``, ``robots.txt`` and each page's head (canonical
URL, description, OpenGraph tags). :mod:`.services` computes, :mod:`.views`/:mod:`.urls` serve,
:mod:`.tags` gives the templates ``{% page_meta as head_meta %}``."""

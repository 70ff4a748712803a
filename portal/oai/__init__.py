"""OAI-PMH 2.0 at ``/oai/``: the service (:mod:`.services`) and its front door (:mod:`.views`)."""

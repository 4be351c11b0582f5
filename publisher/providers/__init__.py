"""DNS providers: small plug-ins behind one interface (see ``base.py``)."""

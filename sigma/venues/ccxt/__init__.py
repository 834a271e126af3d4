"""What every ccxt venue shares: markets into instruments, ccxt order structures into broker
reports, and the execution client. A venue's own folder (``binance``, ``upbit``) holds only
what differs, as a :class:`~sigma.venues.ccxt.profile.VenueProfile`."""

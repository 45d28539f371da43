"""The station's touch screens (NiceGUI): header, flash, download, history, settings.

Pages render the state of kiosk.station.Station and call its services from
worker threads; nothing here blocks the event loop.
"""

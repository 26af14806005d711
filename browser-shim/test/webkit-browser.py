#!/usr/bin/python3
"""The smallest WebKitGTK browser WebKitWebDriver can drive, with a persistent profile.

MiniBrowser (the browser WebKitWebDriver starts by default) runs every automation session in an
ephemeral (private-browsing) data manager, and in WebKitGTK 2.50 an ephemeral session empties the
Cache API's caches when the page reloads or navigates to itself (localStorage survives), so a page
could never load a model from the cache after a reload there. A visitor's WebKitGTK browser
(GNOME Web) keeps a profile on disk, and so does this one: the same WebKitGTK library and engine,
only the shell differs. Usage (started by WebKitWebDriver, see test/browsers.js):
    webkit-browser.py --profile=DIR
Needs Debian's python3-gi and gir1.2-webkit2-4.1 (the library libwebkit2gtk-4.1 itself).
"""
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import Gtk, WebKit2  # noqa: E402

PROFILE = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--profile=")), None)
if not PROFILE:
    sys.exit("webkit-browser.py: --profile=DIR is required")

manager = WebKit2.WebsiteDataManager(base_data_directory=f"{PROFILE}/data", base_cache_directory=f"{PROFILE}/cache")
context = WebKit2.WebContext(website_data_manager=manager)
# Only a context that allows it answers WebKitWebDriver (over the inspector server the driver
# names in $WEBKIT_INSPECTOR_SERVER when it starts this process).
context.set_automation_allowed(True)


def create_web_view(_session):
    view = WebKit2.WebView(web_context=context, is_controlled_by_automation=True)
    window = Gtk.Window(title="llmkg WebKitGTK")
    window.set_default_size(1280, 900)
    window.add(view)
    view.connect("close", lambda _v: window.destroy())
    window.show_all()
    return view


def automation_started(_context, session):
    info = WebKit2.ApplicationInfo()
    info.set_name("WebKitGTK")
    info.set_version(WebKit2.get_major_version(), WebKit2.get_minor_version(), WebKit2.get_micro_version())
    session.set_application_info(info)
    session.connect("create-web-view", create_web_view)


context.connect("automation-started", automation_started)
Gtk.main()

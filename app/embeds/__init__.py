"""Embeds for journalists and pages: the SVG badge, the HTML widget for an iframe, oEmbed for
the widget, and the Server-Sent Events stream of a letter's counts."""

"""The HTML report: data, plots, insight, rendering."""

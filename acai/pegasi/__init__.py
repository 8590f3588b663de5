"""The product: pegasi and how they are judged, evaluation and its report, the demo, export."""

"""The paper's items and the tables beyond it, each a function returning data (and writing its
files): reproduce (Tables 1–2, Figs. 2–3), cross-feeding (Fig. 4), noise response (Figs. 5–6),
microscope stand-ins (Fig. 7), physics tables, quickstart."""

"""Process physics: pure, vectorised numpy functions with explicit units.

One module per process step: :mod:`melting`, :mod:`milling`, :mod:`oxidation`, :mod:`coating`,
:mod:`metrology`; :mod:`psd` holds the particle-size distribution shared by milling and
oxidation; :mod:`energy` gives the electrical energy of each step.
"""

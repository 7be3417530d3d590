"""Reference facts a passport states about each substance: CAS numbers and the EU list of
critical raw materials.

Sources
-------
* CAS Registry Numbers of the elements and oxides (CAS Common Chemistry, cas.org).
* Critical raw materials: Regulation (EU) 2024/1252 (Critical Raw Materials Act), Annex II
  section 1. Nickel and manganese are listed as "battery grade"; silicon and titanium as
  "metal"; the flag here says the element is on the list in one of its listed forms.
"""

from __future__ import annotations

#: CAS Registry Number of each substance a batch can contain.
CAS: dict[str, str] = {
    "Si": "7440-21-3", "Sn": "7440-31-5", "Ti": "7440-32-6", "Co": "7440-48-4",
    "Ni": "7440-02-0", "Cu": "7440-50-8", "Mg": "7439-95-4", "Zr": "7440-67-7",
    "V": "7440-62-2", "Mo": "7439-98-7", "W": "7440-33-7", "Mn": "7439-96-5",
    "Fe": "7439-89-6", "O": "7782-44-7",
    "SiO2": "7631-86-9", "SnO2": "18282-10-5", "conductive_carbon": "1333-86-4",
}

#: Elements on the EU critical raw materials list (Regulation (EU) 2024/1252, Annex II).
CRITICAL: frozenset[str] = frozenset({"Si", "Ti", "Co", "Ni", "Cu", "Mg", "V", "W", "Mn"})

#: The listed form, where the list names one.
CRITICAL_FORM: dict[str, str] = {"Si": "silicon metal", "Ti": "titanium metal",
                                 "Ni": "nickel - battery grade",
                                 "Mn": "manganese - battery grade"}

#: The oxide each base element grows.
OXIDE: dict[str, str] = {"Si": "SiO2", "Sn": "SnO2"}

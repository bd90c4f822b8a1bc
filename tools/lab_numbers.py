"""Write the numbers in notebooks as JupyterLab saves them (a whole float `10.0` as `10`), so opening and saving a chapter changes nothing.

    python tools/lab_numbers.py nbs/*.ipynb      # `make execute` runs it after saving outputs, before nbdev_clean

JupyterLab holds an open notebook as JavaScript, which has one kind of number: the saved widget state that nbconvert writes from
Python (a FloatLogSlider's `"base": 10.0`) comes back from the browser as `10`. nbdev_clean keeps either spelling, so the committed
file must already hold the one JupyterLab writes; tests/test_lab.py checks that every notebook does."""
import json, sys
from pathlib import Path
from execnb.nbio import nb2str, write_nb

def js_number(s:str          # a JSON number with a fraction or exponent, as written in the file
             )->float|int:   # the number JSON.stringify writes back, as Python reads it
    "`s` after a trip through JavaScript: a whole float below 1e21 (JavaScript's switch to exponents) loses its `.0`."
    x = float(s)
    return int(x) if x.is_integer() and abs(x) < 1e21 else x

def as_lab_saves(path:Path)->dict: # the notebook with JupyterLab's numbers
    "The notebook at `path` as JupyterLab would send it to be saved, numbers-wise."
    return json.loads(path.read_text(encoding='utf-8'), parse_float=js_number)

def lab_ready(path:Path)->bool: # whether saving from JupyterLab keeps every number's spelling
    "Whether the file at `path` already writes its numbers as JupyterLab does (in nbdev_clean's layout)."
    return nb2str(as_lab_saves(path)) == path.read_text(encoding='utf-8')

if __name__ == '__main__':
    for p in map(Path, sys.argv[1:]): write_nb(as_lab_saves(p), p)  # writes only the files that change

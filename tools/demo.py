"`make demo`: the smallest end-to-end path the book has so far (the worked example replaces it)."
from ftbook.core import machine_info

if __name__=='__main__':
    for k,v in machine_info().items(): print(f'{k:>14}: {v}')

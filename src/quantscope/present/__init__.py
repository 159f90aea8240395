"""Where stored figures become text: the one place a row becomes cells.

- units.py    byte, rate and time formatting and the one definition of KiB/MiB/GiB; `fmt_pm`.
- labels.py   the one function that names a configuration (`config_label`), and the reference's mark.
- columns.py  the table of columns (header with its unit, formatter, higher is better) that the
              console tables, `compare`, the report and the recommendation's evidence share.

units and labels import nothing from quantscope but errors, so any layer (spec.py included) may use
them; columns reads analysis.summary and is used by sweep, advise, report and the commands. This
__init__ imports nothing, so `import quantscope.present.units` stays light.
"""

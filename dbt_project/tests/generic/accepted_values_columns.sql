{#-
  Each listed column holds only its accepted values (NULLs pass): one test, one query for a
  model's categorical columns. `values` maps column -> list of accepted values.
-#}
{% test accepted_values_columns(model, values) %}
select {{ values.keys() | join(', ') }}
from {{ model }}
where
{%- for column, accepted in values.items() %}
    {% if not loop.first %}or {% endif %}{{ column }} not in (
        {%- for value in accepted %}{% if value is string %}'{{ value }}'{% else %}{{ value }}{% endif %}{% if not loop.last %}, {% endif %}{% endfor -%}
    )
{%- endfor %}
{% endtest %}

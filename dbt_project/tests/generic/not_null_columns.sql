{#-
  None of the listed columns is NULL: one test (one query, one dbt node) for a model's
  required columns instead of one per column, which keeps `dbt build` fast. The failing rows
  come back with every listed column, so the NULL one is plain to see.
-#}
{% test not_null_columns(model, columns) %}
select {{ columns | join(', ') }}
from {{ model }}
where {% for column in columns %}{{ column }} is null{% if not loop.last %} or {% endif %}{% endfor %}
{% endtest %}

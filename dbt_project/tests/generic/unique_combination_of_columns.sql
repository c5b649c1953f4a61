{#-
  The columns together identify a row: no combination of their values appears twice.
  Written here because dbt packages (dbt_utils) cannot be installed offline.
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as copies
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}

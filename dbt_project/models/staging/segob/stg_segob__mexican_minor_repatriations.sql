-- Bulletin section 5 (repatriation events of Mexican minors from the US, by sex, age group and
-- travel condition), as the newest workbook carrying the month published it.

with newest as (

    select * from {{ rows_of_newest_file(source('raw', 'segob_mexican_minor_repatriations'), 'month') }}

),

renamed as (

    select
        cast(month as date) as month,
        sex,
        age_group,
        travel_condition,
        cast(events as bigint) as events,
        source_file,
        source_row,
        vintage,
        first_published_vintage,
        vintages_with_period as vintages_with_month
    from newest

)

select * from renamed
